"""What runs beside the platform in its Docker deployment (docker/): the Docker API guard that
stands between the daemon (and the webserver) and the host's Docker socket."""
