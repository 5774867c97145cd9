"""One module per pipeline stage; `stages.registry` maps config names to them."""
