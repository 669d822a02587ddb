"""The pages and endpoints through which users act: thin views over ``renewals.services``."""
