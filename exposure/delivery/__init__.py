"""Getting decisions out: webhook bodies (:mod:`.payloads`), Standard Webhooks on the wire
(:mod:`.signing`) and the sender that drains the outbox (:mod:`.sender`)."""
