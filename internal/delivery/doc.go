// Package delivery turns recorded changes into messages and delivers
// them. FanOut reads the change log after its cursor and stores one
// message per matching webhook subscription or armed iCal Hook, handing
// it straight to a free worker when there is one. Dispatcher claims due
// messages in batches with a lease, sends signed webhooks and iCal Hooks
// pings within worker, per-subscription and per-host bounds (the store
// paces rate-limited keys), retries failures on a RetryPolicy, and records
// outcomes in batches; both wake on the notify.Bus and poll slowly only
// as a safety net. Pruner deletes old history and expires hooks, hourly.
package delivery
