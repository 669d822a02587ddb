"""Provider callbacks: delivery receipts."""
