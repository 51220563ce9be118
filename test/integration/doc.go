// Package integration holds tests that run Sitrep against the real programs
// it works with: Prometheus and Alertmanager from Debian's packages
// (`apt-get install prometheus prometheus-alertmanager`; .ci/run installs
// them). Without them the tests skip, except under CI, where they fail.
package integration
