# syntax=docker/dockerfile:1
# tokengate's runtime image. Registries may be out of reach where you build:
# scripts/image.sh builds the same image offline with buildah (see README, Build).
#
#   docker build -t tokengate:0.1.0 .        (podman build works the same)

# Build stage: Debian 12, the project's own setup script and CMake (Release,
# tests off); then the runtime root, assembled from the Debian packages of
# exactly the shared libraries the binary loads (scripts/image.sh --root-only).
FROM debian:12 AS build
WORKDIR /src
COPY . .
RUN scripts/setup.sh build \
 && cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DTOKENGATE_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target tokengate \
 && scripts/image.sh --root-only /rootfs --binary /build/tokengate --deb-cache /tmp/debs

# Runtime stage: the binary, its libraries, the CA bundle, /etc/passwd with
# nonroot (65532). No shell, no package manager.
FROM scratch
ARG SOURCE=https://example.invalid/tokengate
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG LICENSES=NOASSERTION
COPY --from=build /rootfs/ /
LABEL org.opencontainers.image.title="tokengate" \
      org.opencontainers.image.description="ext_authz server for Kubernetes service-account tokens" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="${LICENSES}"
ENV PATH=/usr/bin
USER 65532:65532
WORKDIR /
EXPOSE 9191/tcp
ENTRYPOINT ["/usr/bin/tokengate"]
CMD ["serve", "-c", "/etc/tokengate/config.json"]
