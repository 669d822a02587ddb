"""Short-message delivery (SMS, push) through pluggable provider backends."""
