"""The REST API's access parts: API-key authentication, role permissions, throttling, the schema's auth."""
