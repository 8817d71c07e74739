package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/calhook/calhook/webhook"
)

// stallTimeout is how long a scenario waits for the next webhook before
// it gives up on the rest.
const stallTimeout = 30 * time.Second

// deliveryFlags registers the calhook delivery settings the webhook
// scenarios pass on.
func deliveryFlags(fs *flag.FlagSet, cfg *Config) {
	fs.IntVar(&cfg.DeliveryWorkers, "delivery-workers", DefaultDeliveryWorkers, "calhook --delivery-workers: webhook deliveries in flight")
	fs.IntVar(&cfg.DeliveryPerEndpoint, "delivery-per-endpoint", DefaultDeliveryPerEndpoint,
		"calhook --delivery-per-endpoint: the ceiling of deliveries in flight to one subscription (0: calhook's default)")
}

// webhookEnv is what every round of a webhook scenario shares: the
// temporary directory, the calhook binary and the receiver.
type webhookEnv struct {
	cfg  Config
	log  *slog.Logger
	dir  string
	bin  string
	rcv  *hookReceiver
	keep bool
}

// newWebhookEnv makes the temporary directory, builds calhook unless
// cfg.Bin is set, and starts the receiver.
func newWebhookEnv(ctx context.Context, cfg Config, scenario string, verifyEvery int) (*webhookEnv, error) {
	log := cfg.Logger.With("scenario", scenario)
	dir, err := os.MkdirTemp("", "calhookbench-"+scenario+"-*")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", scenario, err)
	}
	env := &webhookEnv{cfg: cfg, log: log, dir: dir, bin: cfg.Bin, keep: cfg.Keep}
	if cfg.Keep {
		log.Info("keeping temporary directory", "dir", dir)
	}
	if env.bin == "" && scenario != "webhooks-baseline" {
		modDir := cfg.ModuleDir
		if modDir == "" {
			if modDir, err = moduleDir(ctx); err != nil {
				env.close()
				return nil, err
			}
		}
		env.bin = filepath.Join(dir, "calhook")
		log.Info("building calhook", "module", modDir)
		if err := buildCalhook(ctx, modDir, env.bin); err != nil {
			env.close()
			return nil, err
		}
	}
	if env.rcv, err = newHookReceiver(verifyEvery); err != nil {
		env.close()
		return nil, err
	}
	return env, nil
}

// close stops the receiver and removes the directory unless kept.
func (env *webhookEnv) close() {
	if env.rcv != nil {
		env.rcv.Close()
	}
	if !env.keep {
		os.RemoveAll(env.dir)
	}
}

// startCalhook starts a calhook with a fresh database in its own
// subdirectory, allowed to deliver to the loopback receiver.
func (env *webhookEnv) startCalhook(ctx context.Context, name string) (*calhookServer, error) {
	dir := filepath.Join(env.dir, name)
	env.log.Debug("starting calhook", "bin", env.bin, "dir", dir)
	return startCalhook(ctx, env.bin, dir, append([]string{
		"--log-level", "warn",
		"--allow-http-webhooks", "--allow-private-cidr", "127.0.0.1/32",
		"--delivery-workers", strconv.Itoa(env.cfg.DeliveryWorkers)},
		perEndpointArgs(env.cfg.DeliveryPerEndpoint)...)...)
}

// stopCalhook stops srv and logs an unclean stop, which is worth knowing
// about but does not spoil the figures already taken.
func (env *webhookEnv) stopCalhook(srv *calhookServer) {
	if err := srv.Stop(); err != nil {
		env.log.Warn("calhook did not stop cleanly", "error", err, "log", srv.logTail(10))
	}
}

// subscription is the answer to POST /v1/subscriptions.
type subscription struct {
	ID     string `json:"webhookSubscriptionId"`
	Secret string `json:"endpointSecret"`
}

// createSubscription subscribes webhookURL to the calendar's changes.
func (c *apiClient) createSubscription(ctx context.Context, apiKey, calendarID, webhookURL string) (*subscription, webhook.Secret, error) {
	var sub subscription
	in := map[string]string{"webhookUrl": webhookURL, "calendarId": calendarID}
	if err := c.do(ctx, http.MethodPost, "/v1/subscriptions", apiKey, in, &sub, http.StatusCreated); err != nil {
		return nil, webhook.Secret{}, fmt.Errorf("create subscription: %w", err)
	}
	secret, err := webhook.ParseSecret(sub.Secret)
	if err != nil {
		return nil, webhook.Secret{}, fmt.Errorf("create subscription: %w", err)
	}
	return &sub, secret, nil
}

// webhookSetup is an account and a calendar with subscriptions whose
// endpoints the receiver knows.
type webhookSetup struct {
	api *apiClient
	acc *account
	cal *calendar
	// eventsURL is where events are created.
	eventsURL string
}

// setupSubscriptions creates an account, a calendar and one subscription
// per path (created by up to workers clients at once), and registers the
// paths with the receiver.
func setupSubscriptions(ctx context.Context, srv *calhookServer, rcv *hookReceiver, paths []string, workers int) (*webhookSetup, error) {
	api := newAPIClient(srv.baseURL, workers)
	acc, cal, err := api.createAccountCalendar(ctx, srv.adminToken, "Bench – Webhooks")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, len(paths)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(paths) {
					return
				}
				_, secret, err := api.createSubscription(ctx, acc.APIKey, cal.ID, rcv.URL+paths[i])
				if err != nil {
					cancel(fmt.Errorf("subscription %d of %d: %w", i+1, len(paths), err))
					return
				}
				rcv.addEndpoint(paths[i], secret)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return &webhookSetup{api: api, acc: acc, cal: cal, eventsURL: srv.baseURL + "/v1/calendars/" + cal.ID + "/events"}, nil
}

// marshalEvents encodes events as request bodies, once, so that the
// writers spend no time on JSON while measured.
func marshalEvents(events []eventInput) ([][]byte, error) {
	bodies := make([][]byte, len(events))
	for i, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode event %d: %w", i, err)
		}
		bodies[i] = b
	}
	return bodies, nil
}

// writeStats is the outcome of posting a batch of changes.
type writeStats struct {
	// OK counts 201 answers; Failed everything else.
	OK, Failed int64
	// First is when the first request was about to be sent, Last when the
	// last answer was read.
	First, Last time.Time
	// Detail groups the failures, empty when there were none.
	Detail string
}

// RPS is acknowledged writes per second, from the first send to the last
// answer.
func (s writeStats) RPS() float64 {
	return perSecond(s.OK, s.Last.Sub(s.First))
}

// perSecond returns n / d in events per second, 0 for no time.
func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// postJSON posts body with the bearer token and returns the status; it
// reads and drops the answer so that the connection is reused.
func postJSON(ctx context.Context, client *http.Client, url, bearer string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// failures groups failed writes by kind, for writeStats.Detail.
type failures map[string]int64

func (f failures) add(status int, err error) {
	if err != nil {
		f[shortErr(err)]++
	} else {
		f["status "+strconv.Itoa(status)]++
	}
}

func (f failures) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(f)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, f[k]))
	}
	return strings.Join(parts, "; ")
}

// postAll creates one event per body with workers concurrent clients, as
// fast as calhook answers, writer w posting to urls[w % len(urls)]: one
// URL for one calhook, one per node for a cluster. A failed write is
// counted, not retried.
func postAll(ctx context.Context, client *http.Client, urls []string, bearer string, bodies [][]byte, workers int) writeStats {
	return postBodies(ctx, client, urls, bearer, bodies, nil, http.StatusCreated, workers)
}

// postBodies is postAll for bodies that each write sizes[i] events (one
// each when sizes is nil) and are answered want when all of them are
// written: OK counts the events.
func postBodies(ctx context.Context, client *http.Client, urls []string, bearer string, bodies [][]byte, sizes []int, want, workers int) writeStats {
	var next atomic.Int64
	var mu sync.Mutex
	st := writeStats{First: time.Now()}
	fails := failures{}
	var wg sync.WaitGroup
	for w := range workers {
		url := urls[w%len(urls)]
		wg.Go(func() {
			var ok int64
			var last time.Time
			mine := failures{}
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					break
				}
				status, err := postJSON(ctx, client, url, bearer, bodies[i])
				last = time.Now()
				switch {
				case err == nil && status == want && sizes != nil:
					ok += int64(sizes[i])
				case err == nil && status == want:
					ok++
				default:
					mine.add(status, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			st.OK += ok
			if last.After(st.Last) {
				st.Last = last
			}
			for k, v := range mine {
				fails[k] += v
				st.Failed += v
			}
		})
	}
	wg.Wait()
	st.Detail = fails.String()
	return st
}

// percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method: the smallest value with at least p% of the values
// at or below it. It is 0 for no values.
func percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	return sorted[min(max(rank, 1), n)-1]
}

// ms returns d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// round2 rounds to two decimals, enough for milliseconds.
func round2(x float64) float64 { return math.Round(x*100) / 100 }

// target returns a pointer to v, for Result.Target.
func targetOf(v float64) *float64 { return &v }

// errCount returns a pointer to n, for Result.Errors.
func errCount(n int64) *int64 { return &n }

// errWrites is returned when a round could not write a single change.
var errWrites = errors.New("no change was acknowledged")
