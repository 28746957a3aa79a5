"""alembic's environment: migrate on the connection a store opened (services.kernel.migrations)."""

from alembic import context

context.configure(connection=context.config.attributes["connection"],
                  on_version_apply=context.config.attributes.get("on_version_apply", ()))
with context.begin_transaction():
    context.run_migrations()
