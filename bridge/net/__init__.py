"""Network guards: connection limits, the network policy, TLS contexts, tickets."""
