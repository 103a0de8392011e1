package subscriptions

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Every write at Pipedrive happens on the leader, in its scheduler, one run
// per company at a time: a replica that receives an admin request sends it
// to the leader over NATS request/reply and waits for the outcome. Two
// replicas can therefore never create a webhook for one company at once.
//
// Commands are authenticated: a client of the same NATS without the
// gateway's keys can neither make one nor replay one it recorded. Each
// carries an HMAC-SHA256 under the command key derived from STATE_KEY (not
// the record key), over the subject and the exact body, and the body holds
// the sender's time and a random nonce: the leader refuses a command whose
// time is more than commandWindow from its own clock, and a nonce it has
// seen within that window. Replies carry a MAC bound to the request's
// nonce, so a forged reply is not believed either.

// The commands a replica sends the leader.
const (
	opReconcile  = "reconcile"
	opDisconnect = "disconnect"
)

type command struct {
	Op        string `json:"op"` // opReconcile | opDisconnect
	CompanyID int64  `json:"company_id"`
	// Force a disconnect: forget the company even when its webhook cannot
	// be deleted.
	Force bool `json:"force,omitempty"`
	// Time is the sender's clock in Unix milliseconds, Nonce 16 random
	// bytes in hex: together they make a command usable once.
	Time  int64  `json:"ts"`
	Nonce string `json:"nonce"`
}

// signed is a command or a reply on the wire: the JSON body exactly as it
// was signed, the id of the STATE_KEY that signed it and the MAC.
type signed struct {
	Body []byte `json:"body"`
	Key  string `json:"key"`
	MAC  []byte `json:"mac"`
	// Refused is set, unsigned, when the leader refuses a command it cannot
	// authenticate: the sender learns why instead of waiting for a timeout.
	Refused string `json:"refused,omitempty"`
}

type commandReply struct {
	Error     string `json:"error,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`
	Gone      bool   `json:"gone,omitempty"`
}

// CommandTimeout bounds how long a request waits for the leader's answer;
// handlers that wait on a command derive their own deadlines from it.
const CommandTimeout = 60 * time.Second

const commandTimeout = CommandTimeout

// commandWindow is how far a command's time may be from the leader's
// clock (replicas' clocks are assumed to agree within it).
const commandWindow = time.Minute

// ErrNoLeader means no replica leads right now (a few seconds after a
// leader dies); the request can be retried.
var ErrNoLeader = errors.New("no leader is reconciling right now; retry in a few seconds")

// ErrNoAnswer means the leader took the command but did not answer within
// CommandTimeout (a slow Pipedrive): it may still complete.
var ErrNoAnswer = errors.New("the leader did not answer in time; the change may still complete: look at the company again in a moment")

// ErrCommandRefused means the leader did not accept the command, or its
// reply did not authenticate: the replicas do not share STATE_KEY.
var ErrCommandRefused = errors.New("the leader refused the command")

func (m *Manager) commandSubject() string { return "_PDGW." + m.opts.StreamName + ".command" }

// sign makes the wire form of body under the current key; bind ties a
// reply to its request.
func (m *Manager) sign(subject string, bind, body []byte) []byte {
	cur := m.keys.Current
	return mustJSON(signed{Body: body, Key: cur.ID, MAC: cur.CommandMAC([]byte(subject), bind, body)})
}

// verify checks a signed message under the current or a previous key and
// returns its body.
func (m *Manager) verify(data []byte, subject string, bind []byte) ([]byte, *signed, error) {
	var s signed
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, nil, errors.New("not a signed message")
	}
	if s.Refused != "" {
		return nil, &s, fmt.Errorf("%w: %s", ErrCommandRefused, s.Refused)
	}
	set, ok := m.keys.Find(s.Key)
	if !ok {
		return nil, nil, errors.New("signed with an unknown key")
	}
	if !hmac.Equal(s.MAC, set.CommandMAC([]byte(subject), bind, s.Body)) {
		return nil, nil, errors.New("bad MAC")
	}
	return s.Body, &s, nil
}

// replySubject stands for the subject in a reply's MAC: the inbox it goes
// to is the requester's choice, the request nonce binds it instead.
const replySubject = "reply"

func (m *Manager) handleCommand(msg *nats.Msg) {
	refuse := func(why string) {
		m.log.Warn("command refused", "reason", why)
		_ = msg.Respond(mustJSON(signed{Refused: why}))
	}
	body, _, err := m.verify(msg.Data, msg.Subject, nil)
	if err != nil {
		refuse(err.Error() + " (do all replicas have the same STATE_KEY?)")
		return
	}
	var cmd command
	if err := json.Unmarshal(body, &cmd); err != nil || cmd.CompanyID <= 0 || cmd.Nonce == "" {
		refuse("malformed command")
		return
	}
	now := m.opts.Clock.Now()
	at := time.UnixMilli(cmd.Time)
	if at.Before(now.Add(-commandWindow)) || at.After(now.Add(commandWindow)) {
		refuse("command time outside the accepted window")
		return
	}
	if !m.seen.add(cmd.Nonce, at.Add(commandWindow), now) {
		refuse("command replayed")
		return
	}
	respond := func(rep commandReply) {
		_ = msg.Respond(m.sign(replySubject, []byte(cmd.Nonce), mustJSON(rep)))
	}
	var ch <-chan result
	switch cmd.Op {
	case opReconcile:
		ch = m.sched.Trigger(cmd.CompanyID)
	case opDisconnect:
		force := cmd.Force
		ch = m.sched.Enqueue(cmd.CompanyID, func(ctx context.Context, id int64) result { return m.disconnect(ctx, id, force) })
	default:
		respond(commandReply{Error: "unknown command " + cmd.Op, Permanent: true})
		return
	}
	go func() {
		select {
		case res := <-ch:
			rep := commandReply{Permanent: res.permanent, Gone: res.gone}
			if res.err != nil {
				rep.Error = res.err.Error()
			}
			respond(rep)
		case <-time.After(commandTimeout):
		}
	}()
}

// send asks the leader to run op for the company and waits for the result.
func (m *Manager) send(ctx context.Context, op string, id int64) (commandReply, error) {
	return m.sendCommand(ctx, command{Op: op, CompanyID: id})
}

// sendCommand signs cmd, sends it to the leader and waits for its reply.
func (m *Manager) sendCommand(ctx context.Context, cmd command) (commandReply, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd.Time = m.opts.Clock.Now().UnixMilli()
	cmd.Nonce = newNonce()
	subject := m.commandSubject()
	msg, err := m.nc.RequestWithContext(ctx, subject, m.sign(subject, nil, mustJSON(cmd)))
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return commandReply{}, fmt.Errorf("%w (%v)", ErrNoLeader, err)
	case errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded):
		return commandReply{}, fmt.Errorf("%w (%v)", ErrNoAnswer, err)
	case err != nil:
		return commandReply{}, err
	}
	body, _, err := m.verify(msg.Data, replySubject, []byte(cmd.Nonce))
	if errors.Is(err, ErrCommandRefused) {
		return commandReply{}, err
	}
	if err != nil {
		return commandReply{}, fmt.Errorf("%w: reply from the leader: %v", ErrCommandRefused, err)
	}
	var rep commandReply
	if err := json.Unmarshal(body, &rep); err != nil {
		return commandReply{}, errors.New("malformed reply from the leader")
	}
	return rep, nil
}

func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// nonces remembers command nonces until they could no longer be accepted
// anyway (their time is out of the window).
type nonces struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func newNonces() *nonces { return &nonces{seen: map[string]time.Time{}} }

// add records nonce until expires; false if it was seen already.
func (n *nonces) add(nonce string, expires, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.seen[nonce]; ok {
		return false
	}
	for k, exp := range n.seen {
		if now.After(exp) {
			delete(n.seen, k)
		}
	}
	n.seen[nonce] = expires
	return true
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled here
	}
	return b
}
