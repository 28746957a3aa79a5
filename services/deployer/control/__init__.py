"""The rollout controller's parts, one concern each; `services.deployer.controller.Controller` composes them.

- `live_steps`: the candidate's numbers in the current step, counted on the request path.
- `registry`: every goal's Rollout in memory and the transitions between them.
- `traffic`: a rollout's state carried to what serves (the route, the adapters in the pool).
- `durable`: the rollout state in the store, and the deployment events emitted with it.
- `background`: the ticker (time-based judging) and the writer (store writes off the request path).
"""
