"""Channels consumers: thin websocket faces over the services (see DESIGN.md)."""
