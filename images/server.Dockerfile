# The BleepStore server image. Packages a `bleepstore` binary built by cargo
# (copied into the build context by the caller) onto a small non-root base:
#   docker build -f images/server.Dockerfile --build-arg BASE=... CONTEXT
# The public workflows use distroless `cc` (glibc, CA bundle, no shell);
# tests/operator/run.sh uses a locally made Debian minbase image.
ARG BASE=gcr.io/distroless/cc-debian12:nonroot
FROM ${BASE}
ARG VERSION=dev
LABEL org.opencontainers.image.title="bleepstore" \
      org.opencontainers.image.description="Kubernetes-native S3-compatible object store" \
      org.opencontainers.image.source="https://github.com/bleepstore/bleepstore" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --chmod=0755 bleepstore /usr/local/bin/bleepstore
USER 65532:65532
EXPOSE 9000 9001
ENTRYPOINT ["/usr/local/bin/bleepstore"]
CMD ["serve"]
