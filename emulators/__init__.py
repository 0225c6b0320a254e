"""Stand-ins for the systems Bastion talks to (MDM servers, device agents) in tests."""
