"""The serving half of the deployer: adapter pool, micro-batcher, input checks, inference log."""
