"""The emulator's Simple Message Queue (MNS) service: :class:`~.service.MNSService`."""
