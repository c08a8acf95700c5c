"""HTTP blueprints: parse -> request model -> service -> response model."""
