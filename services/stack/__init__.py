"""The stack: the broker and the five services as local background processes, and the demo.

Not a service: it starts services as processes and talks to them only through Kafka and gRPC.
"""
