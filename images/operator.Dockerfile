# The BleepStore operator image: a `bleepstore-operator` binary built by cargo
# (copied into the build context by the caller) on a small non-root base.
ARG BASE=gcr.io/distroless/cc-debian12:nonroot
FROM ${BASE}
ARG VERSION=dev
LABEL org.opencontainers.image.title="bleepstore-operator" \
      org.opencontainers.image.description="Kubernetes operator for BleepStore clusters" \
      org.opencontainers.image.source="https://github.com/bleepstore/bleepstore" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --chmod=0755 bleepstore-operator /usr/local/bin/bleepstore-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/bleepstore-operator"]
