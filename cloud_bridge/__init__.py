"""The cloud bridge: MQTT ingest, verification, pairing with PC exam sessions, proctor delivery.

Not built yet (see the device-to-cloud issue). It will import nothing from ``edge_app`` except the
wire protocol module.
"""
