"""SIP user agent: sans-IO transactions, dialogs, digest auth and SDP, plus the UDP driver."""
