"""HTTP plumbing shared by the blueprints and the server: request parsing, middleware, API docs, server errors."""
