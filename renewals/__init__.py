"""Auto-renewal billing compliance for Django."""
