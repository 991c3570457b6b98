# A stand-in for the official nginx image where no registry is reachable: Debian's nginx on the
# local base, reading /etc/nginx/conf.d/*.conf and running in the foreground as the official one.
ARG BASE_IMAGE=mlplatform-local/debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       nginx-light >/dev/null \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* \
    && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
