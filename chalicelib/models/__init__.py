"""Request, domain (stored) and response models, kept apart."""
