"""Pure rules of the deployer: routing, the rollout state machine, the serving policy."""
