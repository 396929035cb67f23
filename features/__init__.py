"""Feature side of leadlink."""
