"""The control plane: a master process that supervises the data-plane workers (DESIGN §1)."""
