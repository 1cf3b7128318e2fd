"""Sans-IO HTTP/1.1: parsing, header rules and serialization. Nothing here imports asyncio."""
