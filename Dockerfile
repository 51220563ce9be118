# Sitrep: a static binary on distroless, running as nonroot, with the bbolt
# database on a volume.
#   docker build -t sitrep .
#   docker run -it -v sitrep-data:/data sitrep              # terminal mode
#   docker run -v sitrep-data:/data -e SLACK_BOT_TOKEN -e SLACK_APP_TOKEN sitrep   # Slack
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/bot ./cmd/bot \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bot /usr/local/bin/bot
COPY --from=build --chown=nonroot:nonroot /out/data /data
COPY --from=build /src/runbooks /runbooks
COPY --from=build /src/releases /releases
ENV SITREP_DB=/data/sitrep.db \
    SITREP_LISTEN=0.0.0.0:8080 \
    SITREP_RUNBOOKS=/runbooks \
    SITREP_RELEASES=/releases
VOLUME ["/data"]
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/bot"]
CMD ["serve"]
