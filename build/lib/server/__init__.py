"""FastAPI service: routes, dependencies, schemas, error mapping, console pages."""
