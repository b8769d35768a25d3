"""Everything that knows Meilisearch: index settings, document builders, the client, sync and reindex.

The customer list searches the database until the search issue lands; the write path already queues every change
in the search outbox (app/core), so the index can be built and kept in step without losing a change.
"""
