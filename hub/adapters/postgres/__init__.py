"""PostgreSQL adapters over one asyncpg pool."""
