"""SQLAlchemy models, database sessions, encrypted photo store and the faiss vector index."""
