// Package incidents is Sitrep's domain: an Incident with its severity, status,
// procedure phases and roles; the typed timeline Event; the severity
// classifier; the acknowledgement-deadline reminders; and the Service that
// applies every change through the Store it declares.
//
// It imports only the standard library. Adapters (chat, webhooks, storage)
// implement the Store and Observer interfaces declared here.
package incidents
