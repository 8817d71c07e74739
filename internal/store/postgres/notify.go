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

// notifier sends the notifications of committed writes to the other
// nodes, at a bounded rate, and mostly inside the writing transactions.
//
// Notifying is dear in PostgreSQL, in two ways:
//   - It serializes the commits of all transactions that notify: one
//     holds a database-wide lock from queueing its notifications until its
//     commit is on disk. When every write notified, this capped the whole
//     pipeline at about a thousand commits a second.
//   - A transaction that notifies gets a transaction id and a commit
//     record even if it writes nothing. Notifications sent after their
//     writes, in transactions of their own, cost 3 nodes a fifth of their
//     throughput; pg-throughput got it back with none sent at all.
//
// Every node hears every node's notifications, so their cost also grows
// with the square of the nodes. A node therefore sends at most one batch
// of notifications per notifyWindow, and a batch rides inside a write: the
// first group of writes to commit after the window ends takes what
// accumulated since the last batch, merged and without duplicates, and
// sends it with its own in its transaction (see pipeTx.commit). Only that
// group waits for other nodes' notifying commits. Notes that no write
// takes within rideGrace after the window ends go out in a transaction of
// their own, with synchronous_commit off. Other nodes thus learn of a
// write within notifyWindow plus rideGrace at most, at once after a quiet
// window.
//
// A notification that rides is sent if and only if its write commits. One
// that waits for a ride is lost only if the node dies first: other nodes
// then learn of the write from their periodic polls, as when their
// listening connection drops.
type notifier struct {
	pool *pgxpool.Pool
	log  func() *slog.Logger

	// window is the shortest time between two batches (notifyWindow),
	// grace how long a batch waits for a write to ride on (rideGrace).
	window, grace time.Duration

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

// rideGrace is how long after its window ends a batch of notifications
// waits for a write to ride on, before it goes out alone. Under load a
// node's groups of writes commit every few milliseconds.
const rideGrace = notifyWindow

func newNotifier(pool *pgxpool.Pool, log func() *slog.Logger) *notifier {
	return &notifier{
		pool: pool, log: log, queued: map[note]bool{}, window: notifyWindow, grace: rideGrace,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// ride returns the batch a committing transaction is to send, own with
// everything queued, if the window since the last batch is over, and
// counts it as sent; otherwise it returns nil. If the transaction fails
// to commit, its caller gives the batch back with send.
func (n *notifier) ride(own []note) []note {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := time.Now()
	if t.Sub(n.lastSent) < n.window {
		return nil
	}
	n.lastSent = t
	if len(n.pending) == 0 {
		return own
	}
	queued := n.queued
	batch := n.take()
	for _, nt := range own {
		if !queued[nt] {
			batch = append(batch, nt)
		}
	}
	return batch
}

// send queues notes; they ride on the next write that commits after the
// current window, or go out alone rideGrace later. It never blocks.
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
	n.poke()
}

// run sends what is queued and was not taken by a write, rideGrace after
// its window ended, until close.
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
		wait := time.Until(n.lastSent.Add(n.window + n.grace))
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
		n.flushLate()
	}
}

// close sends what is queued and stops.
func (n *notifier) close() {
	close(n.stop)
	<-n.done
}

// flushLate sends what is queued if no write took it on time. A ride
// taken meanwhile restarted the window; then the loop comes back when it
// ends.
func (n *notifier) flushLate() {
	n.mu.Lock()
	if time.Since(n.lastSent) < n.window+n.grace {
		n.mu.Unlock()
		n.poke()
		return
	}
	notes := n.take()
	n.mu.Unlock()
	n.sendAlone(notes)
}

// poke wakes run.
func (n *notifier) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// flush sends everything queued.
func (n *notifier) flush() {
	n.mu.Lock()
	notes := n.take()
	n.mu.Unlock()
	n.sendAlone(notes)
}

// take empties the queue and returns what was in it, counting it as sent
// if anything was. n.mu must be held.
func (n *notifier) take() []note {
	notes := n.pending
	n.pending, n.queued = nil, map[note]bool{}
	if len(notes) > 0 {
		n.lastSent = time.Now()
	}
	return notes
}

// sendAlone sends notes in one transaction of their own.
func (n *notifier) sendAlone(notes []note) {
	if len(notes) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// One implicit transaction, one round trip.
	batch := &pgx.Batch{}
	queueNotifyAlone(batch, notes)
	err := n.pool.SendBatch(ctx, batch).Close()
	if err != nil {
		n.log().Warn("notify other nodes; they catch up by polling", "error", err, "notifications", len(notes))
	}
}

// queueNotify adds to b the statement that sends notes. Inside a
// transaction they go out when it commits; outside one, queueNotifyAlone
// gives them a cheaper implicit transaction of their own.
func queueNotify(b *pgx.Batch, notes []note) {
	channels, payloads := make([]string, len(notes)), make([]string, len(notes))
	for i, nt := range notes {
		channels[i], payloads[i] = nt.channel, nt.payload
	}
	b.Queue(`SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS n(c, p)`, channels, payloads)
}

// queueNotifyAlone adds to b the statements that send notes in a
// transaction of their own (an implicit one, outside BEGIN and COMMIT),
// with synchronous_commit off: it then holds PostgreSQL's notification
// lock only for a moment.
func queueNotifyAlone(b *pgx.Batch, notes []note) {
	b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
	queueNotify(b, notes)
}
