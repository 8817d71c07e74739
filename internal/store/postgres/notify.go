package postgres

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// note is one notification: a channel and a payload.
type note struct{ channel, payload string }

// notifier sends the notifications of committed writes, outside the
// writing transactions and at a bounded rate.
//
// PostgreSQL serializes the commits of all transactions that notify: such
// a transaction holds a database-wide lock from queueing its notifications
// until its commit is on disk. A write that notified in its own
// transaction would wait for every other notifying write's WAL flush; this
// capped the whole pipeline at about a thousand commits a second. Sent
// after the write committed instead, in a transaction that writes nothing
// and commits with synchronous_commit off, a notification holds the lock
// for microseconds.
//
// Every node hears every node's notifications, so their cost grows with
// the square of the nodes. A node therefore sends at most one batch of
// notifications per notifyWindow: the first after a quiet window goes out
// at once (with the commit that made it, see pipeTx.commit), those that
// come within the window are merged, duplicates dropped, and sent when it
// ends. Other nodes thus learn of a write within notifyWindow plus the
// notification's own delay.
//
// A notification is lost only if the node dies between its write's commit
// and the send: other nodes then learn of the write from their periodic
// polls, as when their listening connection drops.
type notifier struct {
	pool *pgxpool.Pool
	log  func() *slog.Logger

	mu       sync.Mutex
	pending  []note
	queued   map[note]bool
	lastSent time.Time

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// notifyWindow is the shortest time between two batches of a node's
// notifications.
const notifyWindow = 10 * time.Millisecond

func newNotifier(pool *pgxpool.Pool, log func() *slog.Logger) *notifier {
	return &notifier{
		pool: pool, log: log, queued: map[note]bool{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// now reports whether a batch of notifications may go out at once, and if
// so counts it as sent: nothing is waiting and the window since the last
// batch is over.
func (n *notifier) now() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := time.Now()
	if len(n.pending) > 0 || t.Sub(n.lastSent) < notifyWindow {
		return false
	}
	n.lastSent = t
	return true
}

// send queues notes; they go out when the current window ends, or at once
// if it has. It never blocks.
func (n *notifier) send(notes ...note) {
	if len(notes) == 0 {
		return
	}
	n.mu.Lock()
	for _, nt := range notes {
		if !n.queued[nt] {
			n.queued[nt] = true
			n.pending = append(n.pending, nt)
		}
	}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// run sends what is queued, a window after the last batch, until close.
func (n *notifier) run() {
	defer close(n.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-n.wake:
		case <-n.stop:
			n.flush()
			return
		}
		n.mu.Lock()
		wait := time.Until(n.lastSent.Add(notifyWindow))
		n.mu.Unlock()
		if wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-n.stop:
				n.flush()
				return
			}
		}
		n.flush()
	}
}

// close sends what is queued and stops.
func (n *notifier) close() {
	close(n.stop)
	<-n.done
}

// flush sends every queued notification in one transaction.
func (n *notifier) flush() {
	n.mu.Lock()
	notes := n.pending
	n.pending, n.queued = nil, map[note]bool{}
	if len(notes) > 0 {
		n.lastSent = time.Now()
	}
	n.mu.Unlock()
	if len(notes) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// One implicit transaction, one round trip.
	batch := &pgx.Batch{}
	queueNotify(batch, notes)
	err := n.pool.SendBatch(ctx, batch).Close()
	if err != nil {
		n.log().Warn("notify other nodes; they catch up by polling", "error", err, "notifications", len(notes))
	}
}

// queueNotify adds to b the statements that send notes, with
// synchronous_commit off for the transaction they run in: it should be
// one of their own (an implicit one, outside BEGIN and COMMIT).
func queueNotify(b *pgx.Batch, notes []note) {
	channels, payloads := make([]string, len(notes)), make([]string, len(notes))
	for i, nt := range notes {
		channels[i], payloads[i] = nt.channel, nt.payload
	}
	b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
	b.Queue(`SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS n(c, p)`, channels, payloads)
}
