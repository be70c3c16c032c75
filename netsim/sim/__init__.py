"""The deterministic adversarial simulator (docs/architecture.md, "The core idea").

- :mod:`netsim.sim.simulator`: a heap of ``(time, seq, event)`` driven by one
  ``random.Random(seed)``, every message round-tripped through the codec; identical seed and
  parameters give an identical trace;
- :mod:`netsim.sim.schedulers`: when each in-flight message is delivered (random, FIFO,
  heavy-tail, partition, starve, targeted views); a scheduler may delay, never drop or forge;
- :mod:`netsim.sim.adversary`: the Byzantine strategies (crash, silent, garbage, equivocate,
  twins, replay, flood, forge, ...) with omniscient read access to the honest nodes.

It runs the sans-IO protocols of the layers above unchanged; nothing here opens a socket.
"""
