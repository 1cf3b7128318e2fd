"""Routing algorithms: the route trie (pure Python twin plus the compiled speedup)."""
