"""The device-to-cloud link: durable outbox, signed events, MQTT."""
