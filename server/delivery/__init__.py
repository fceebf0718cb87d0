"""The delivery core, sans I/O: what keeps "every event once, in seq order" true.

Two state machines, both pure (no socket, database, bus or clock of their
own), driven by the realtime hub and the socket connection:

- ``feed.ProjectFeed``: one project's events on one instance. It orders what
  the instance hears (events over the bus, announcements that the log holds
  events up to a seq) into one gap-free run, and asks for missing ranges to
  be read from the event log.
- ``stream.JoinedStream``: one joined project on one socket, the join
  handover included: events held while the join reads its snapshot or replay
  at seq S, released from S + 1 on, each once, with any gap read from the log.

Their model-based tests (tests/delivery/) drive both through arbitrary
interleavings of bus deliveries, losses, duplicates, announcements, reads that
return late or fail, joins, leaves and revocations.
"""
