"""so-vits-svc 4.x compatible voice conversion engine."""
