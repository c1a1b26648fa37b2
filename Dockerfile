# The hub in a container: the packed program on Node 24, running `hub start`.
#   npm pack                                   # builds dist/ (prepack) and writes nitro-margin-<version>.tgz
#   docker build -t nitro-margin .
#   docker run -v "$PWD/ops:/data" -p 4001:4001 -e NITRO_MARGIN_KEY_PASSWORD nitro-margin
# /data holds hub.json (listening on /ip4/0.0.0.0/tcp/4001), the keystore, deployments/ and the dataDir.
# The same entry point is tested outside Docker: test/deploy/package.test.ts installs the tarball and runs it.
FROM node:24-slim
COPY nitro-margin-*.tgz /tmp/
RUN npm install --global --omit=optional /tmp/nitro-margin-*.tgz && rm /tmp/nitro-margin-*.tgz
USER node
WORKDIR /data
VOLUME /data
EXPOSE 4001
ENTRYPOINT ["nitro-margin"]
CMD ["hub", "start", "--config", "/data/hub.json"]
