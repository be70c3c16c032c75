"""Performance comparisons for Jungle (never timed tests). Results go to BENCHMARKS.md."""
