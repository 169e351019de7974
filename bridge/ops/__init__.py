"""Operations: the event bus, webhooks, logs and their redaction, DTMF masking, loop lag."""
