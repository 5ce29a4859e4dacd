// StrategyBuzzer's reference web client: plain ES module, no build. REST for the lobby, the
// Pusher protocol (pusher-js served by Socle) for the room. The server decides everything: this
// page shows what it is told and sends what the player does.
const $ = (id) => document.getElementById(id);
const state = {
  token: sessionStorage.getItem('sb-token'),
  me: null,
  config: null,
  pusher: null,
  playerChannel: null,
  roomId: null,
  no: -1,
  floor: null,
  deadline: 0,
  names: new Map(),
};

function notice(text) {
  $('notice').textContent = text ?? '';
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: {
      ...(state.token ? { authorization: `Bearer ${state.token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw Object.assign(new Error(data?.detail ?? response.statusText), data ?? {});
  return data;
}

function show(section) {
  for (const id of ['auth', 'lobby', 'room']) $(id).hidden = id !== section;
}

async function authenticate(kind) {
  const email = $('email').value;
  const password = $('password').value;
  try {
    if (kind === 'sign-up') {
      const created = await api('POST', '/auth/sign-up', { email, password });
      state.token = created.tokens.accessToken;
    } else {
      state.token = (await api('POST', '/auth/sign-in', { email, password })).accessToken;
    }
    sessionStorage.setItem('sb-token', state.token);
    notice('');
    await start();
  } catch (error) {
    notice(error.message);
  }
}

async function refreshMe() {
  state.me = await api('GET', '/strategybuzzer/me');
  $('who').hidden = false;
  $('player-name').textContent = state.me.player.name;
  $('coins').textContent = state.me.coins ?? '–';
  if (!$('name').value) $('name').value = state.me.player.name;
  return state.me;
}

let leaderboardCursor = null;
async function loadLeaderboard(more = false) {
  const period = $('leaderboard-period').value;
  const query = `period=${period}&limit=20${more && leaderboardCursor ? `&cursor=${leaderboardCursor}` : ''}`;
  const { players, nextCursor } = await api('GET', `/strategybuzzer/leaderboard?${query}`);
  leaderboardCursor = nextCursor;
  $('leaderboard-more').hidden = nextCursor === null;
  const items = players.map((player) => {
    const item = document.createElement('li');
    item.textContent = `${player.name} — ${player.points} pts (level ${player.level})`;
    return item;
  });
  if (more) $('leaderboard').append(...items);
  else $('leaderboard').replaceChildren(...items);
}

async function loadProfile() {
  const profile = await api('GET', `/strategybuzzer/players/${state.me.player.userId}`);
  const { stats, week } = profile;
  $('stats').textContent =
    `${stats.games} games, ${stats.wins} wins, ${stats.points} pts, best streak ${stats.bestStreak}; this week ${week.points} pts`;
  showAvatar(profile.avatar);
}

function showAvatar(avatar) {
  $('avatar').hidden = !avatar;
  if (avatar) $('avatar').src = avatar.small;
}

async function loadShop() {
  const { packs } = await api('GET', '/strategybuzzer/shop');
  $('packs').replaceChildren(
    ...packs.map((pack) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.pack = pack.id;
      button.textContent = `${pack.name} — ${(pack.price / 100).toFixed(2)} ${pack.currency}`;
      button.addEventListener('click', () => void buy(pack.id));
      item.append(button);
      return item;
    }),
  );
}

// Stripe Checkout opens in another tab: this page stays as it is and gets the new balance on
// the player's channel (`coins`) once the payment's webhook is applied. The tab is opened at
// the click (a popup opened after an await would be blocked), then sent to Stripe's page.
async function buy(packId) {
  const tab = window.open('', 'sb-checkout');
  const done = new URL('checkout.html', location.href).href;
  try {
    const { checkoutUrl } = await api('POST', '/strategybuzzer/shop/checkout', {
      packId,
      successUrl: `${done}?paid=1`,
      cancelUrl: done,
    });
    if (tab) tab.location.href = checkoutUrl;
    else location.assign(checkoutUrl); // no popups here: pay in this tab
    notice('Complete the payment in the Stripe tab: your coins arrive here.');
  } catch (error) {
    tab?.close();
    notice(error.message);
  }
}

function connect() {
  state.config ??= null;
  const pusher = new window.Pusher(state.config.appKey, {
    cluster: 'local',
    wsHost: location.hostname,
    wsPort: Number(location.port || (location.protocol === 'https:' ? 443 : 80)),
    wssPort: Number(location.port || 443),
    forceTLS: location.protocol === 'https:',
    enabledTransports: ['ws', 'wss'],
    disableStats: true,
    channelAuthorization: {
      endpoint: '/realtime/auth',
      transport: 'ajax',
      headers: { authorization: `Bearer ${state.token}` },
    },
  });
  state.pusher = pusher;
  const own = pusher.subscribe(state.me.channels.player);
  state.playerChannel = own;
  // Every (re)subscription says hello: the server notes this socket and measures its latency.
  own.bind('pusher:subscription_succeeded', () => own.trigger('client-hello', {}));
  own.bind('matched', ({ roomId, players }) => {
    for (const player of players) state.names.set(player.userId, player.name);
    enterRoom(roomId);
    drawScores(players);
    $('prompt').textContent = 'Get ready…';
  });
  own.bind('error', (error) => notice(error.message ?? error.code));
  own.bind('coins', ({ balance }) => {
    $('coins').textContent = balance;
  });
  own.bind('voice-peers', ({ peers }) => {
    for (const userId of peers) offerTo(userId).catch((error) => notice(error.message));
  });
  own.bind('voice-signal', (signal) => onSignal(signal).catch((error) => notice(error.message)));
  own.bind('voice-left', ({ userId }) => closePeer(userId));
  own.bind('hint', ({ no, strike }) => {
    if (no !== state.no) return;
    for (const index of strike)
      $('choices').children[index]?.querySelector('button')?.classList.add('struck');
  });
}

// Voice: a WebRTC mesh (one peer connection per other player, 4 at most), signalled through
// the server on this player's channel; TURN credentials of this player's own, short-lived.
const voice = { on: false, stream: null, iceServers: [], peers: new Map() };

async function joinVoice() {
  try {
    const { iceServers } = await api('GET', '/strategybuzzer/voice/credentials');
    voice.iceServers = iceServers;
    voice.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    voice.on = true;
    $('voice').textContent = 'Leave voice';
    send('client-voice-join', {});
  } catch (error) {
    notice(error.message);
  }
}

function leaveVoice() {
  if (!voice.on) return;
  if (state.roomId) send('client-voice-leave', {});
  for (const userId of [...voice.peers.keys()]) closePeer(userId);
  for (const track of voice.stream?.getTracks() ?? []) track.stop();
  voice.on = false;
  voice.stream = null;
  $('voice').textContent = 'Join voice';
}

function peerOf(userId) {
  const known = voice.peers.get(userId);
  if (known) return known;
  const peer = new RTCPeerConnection({ iceServers: voice.iceServers });
  for (const track of voice.stream.getTracks()) peer.addTrack(track, voice.stream);
  peer.addEventListener('icecandidate', ({ candidate }) => {
    if (candidate) send('client-voice-signal', { to: userId, kind: 'ice', data: candidate.toJSON() });
  });
  peer.addEventListener('track', ({ streams }) => {
    const audio = document.createElement('audio');
    audio.autoplay = true;
    audio.srcObject = streams[0];
    audio.dataset.userId = userId;
    $('voice-audio').append(audio);
  });
  voice.peers.set(userId, peer);
  return peer;
}

function closePeer(userId) {
  voice.peers.get(userId)?.close();
  voice.peers.delete(userId);
  for (const audio of $('voice-audio').querySelectorAll('audio'))
    if (audio.dataset.userId === userId) audio.remove();
}

async function offerTo(userId) {
  const peer = peerOf(userId);
  await peer.setLocalDescription(await peer.createOffer());
  send('client-voice-signal', { to: userId, kind: 'offer', data: peer.localDescription.toJSON() });
}

async function onSignal({ from, kind, data }) {
  if (!voice.on) return;
  const peer = peerOf(from);
  if (kind === 'offer') {
    await peer.setRemoteDescription(data);
    await peer.setLocalDescription(await peer.createAnswer());
    send('client-voice-signal', { to: from, kind: 'answer', data: peer.localDescription.toJSON() });
  } else if (kind === 'answer') await peer.setRemoteDescription(data);
  else await peer.addIceCandidate(data);
}

function send(event, data) {
  state.playerChannel.trigger(event, { roomId: state.roomId, ...data });
}

function enterRoom(roomId) {
  if (state.roomId === roomId) return;
  leaveRoom();
  state.roomId = roomId;
  show('room');
  $('results').hidden = true;
  $('chat').replaceChildren();
  const room = state.pusher.subscribe(`private-sb-room-${roomId}`);
  room.bind('question', drawQuestion);
  const giveFloor = ({ userId, remainingMs }) => {
    state.floor = userId;
    $('floor').textContent = `${nameOf(userId)} answers`;
    setDeadline(remainingMs);
    enableChoices(userId === state.me.player.userId);
  };
  // The order that gives the floor carries it (the first buzzes of a question); a floor passed on
  // after a wrong answer comes alone.
  room.bind('order', ({ no, order, floor }) => {
    if (no !== state.no) return;
    $('order').textContent = order.map(nameOf).join(' → ');
    if (floor) giveFloor(floor);
  });
  room.bind('floor', ({ no, userId, remainingMs }) => {
    if (no === state.no) giveFloor({ userId, remainingMs });
  });
  room.bind('answer', ({ userId, correct, scores }) => {
    $('floor').textContent = `${nameOf(userId)}: ${correct ? 'right!' : 'wrong'}`;
    drawScores(scores);
    enableChoices(false);
  });
  // A right answer comes as the reveal naming its `winner` (a wrong one as `answer`).
  room.bind('reveal', ({ answer, winner, scores }) => {
    $('choices').children[answer]?.classList.add('right');
    $('floor').textContent = winner ? `${nameOf(winner)} scores` : 'Nobody found it';
    drawScores(scores);
    $('buzz').disabled = true;
    enableChoices(false);
  });
  room.bind('finished', ({ results, reason }) => {
    $('results').hidden = false;
    // A game cut short (its server stopped or was lost) ends with the scores it had.
    if (reason) $('floor').textContent = 'The game was cut short: scores as they stood';
    $('result-list').replaceChildren(
      ...results.map((result) => {
        const item = document.createElement('li');
        item.textContent = `#${result.rank} ${result.name} — ${result.score}`;
        return item;
      }),
    );
    $('buzz').disabled = true;
    void refreshMe();
  });
  const chat = state.pusher.subscribe(`private-sb-chat-${roomId}`);
  chat.bind('message', addChat);
  chat.bind('pusher:subscription_succeeded', async () => {
    const { messages } = await api('GET', `/strategybuzzer/rooms/${roomId}/chat`);
    $('chat').replaceChildren();
    for (const message of messages) addChat(message);
  });
}

function leaveRoom() {
  if (state.roomId === null) return;
  leaveVoice();
  state.pusher.unsubscribe(`private-sb-room-${state.roomId}`);
  state.pusher.unsubscribe(`private-sb-chat-${state.roomId}`);
  state.roomId = null;
  state.no = -1;
}

const nameOf = (userId) => state.names.get(userId) ?? userId.slice(0, 6);

function drawQuestion(question) {
  state.no = question.no;
  state.floor = question.floor?.userId ?? null;
  $('question-no').textContent = `— question ${question.no + 1} / ${question.total}`;
  $('category').textContent = question.category;
  $('prompt').textContent = question.prompt;
  $('order').textContent = (question.order ?? []).map(nameOf).join(' → ');
  $('floor').textContent = '';
  $('choices').replaceChildren(
    ...question.choices.map((choice, index) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = choice;
      button.disabled = true;
      button.addEventListener('click', () => send('client-answer', { no: state.no, choice: index }));
      item.append(button);
      return item;
    }),
  );
  const mine = state.me.player.userId;
  $('buzz').disabled = (question.buzzed ?? []).includes(mine);
  setDeadline(question.floor?.remainingMs ?? question.remainingMs);
  if (question.floor) enableChoices(question.floor.userId === mine);
}

function enableChoices(enabled) {
  for (const button of $('choices').querySelectorAll('button')) button.disabled = !enabled;
  $('hint').disabled = !enabled;
}

function drawScores(scores) {
  for (const seat of scores) state.names.set(seat.userId, seat.name);
  $('scores').replaceChildren(
    ...scores.map((seat) => {
      const item = document.createElement('li');
      item.textContent = `${seat.name}: ${seat.score}${seat.streak > 1 ? ` (streak ${seat.streak})` : ''}`;
      if (seat.userId === state.me.player.userId) item.className = 'me';
      item.dataset.userId = seat.userId;
      return item;
    }),
  );
}

function addChat(message) {
  const item = document.createElement('li');
  item.textContent = `${message.name}: ${message.body}`;
  $('chat').append(item);
  item.scrollIntoView({ block: 'nearest' });
}

function setDeadline(remainingMs) {
  state.deadline = performance.now() + remainingMs;
}
setInterval(() => {
  const left = Math.max(0, state.deadline - performance.now());
  $('timer').textContent = state.no >= 0 ? `${(left / 1000).toFixed(1)} s` : '–';
}, 100);

function buzz() {
  if ($('buzz').disabled || state.no < 0) return;
  $('buzz').disabled = true;
  send('client-buzz', { no: state.no });
}

async function start() {
  state.config = await api('GET', '/strategybuzzer/config');
  const me = await refreshMe();
  connect();
  if (me.room && me.room.phase !== 'finished') {
    // Back in a running game (a reload, a lost connection): the seat is kept; draw it again.
    enterRoom(me.room.roomId);
    drawScores(me.room.scores);
    if (me.room.phase === 'question') drawQuestion(me.room);
  } else {
    show('lobby');
    $('cancel').hidden = !me.ticket;
    $('lobby-status').textContent = me.ticket ? 'Waiting for players…' : '';
    void loadLeaderboard();
    void loadShop();
    void loadProfile();
  }
}

$('auth-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void authenticate('sign-in');
});
$('sign-up').addEventListener('click', () => void authenticate('sign-up'));
$('sign-out').addEventListener('click', () => {
  sessionStorage.removeItem('sb-token');
  location.reload();
});
$('new-code').addEventListener('click', async () => {
  $('code').value = (await api('POST', '/strategybuzzer/codes')).code;
});
$('play-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    const name = $('name').value.trim();
    if (name && name !== state.me.player.name) {
      await api('PUT', '/strategybuzzer/me', { name });
      $('player-name').textContent = name;
    }
    const code = $('code').value.trim().toUpperCase();
    await api('POST', '/strategybuzzer/play', {
      mode: $('mode').value,
      language: $('language').value.trim(),
      ...(code ? { code } : {}),
    });
    $('lobby-status').textContent = 'Waiting for players…';
    $('cancel').hidden = false;
    await refreshMe();
  } catch (error) {
    notice(error.message);
  }
});
$('cancel').addEventListener('click', async () => {
  await api('DELETE', '/strategybuzzer/play');
  $('lobby-status').textContent = '';
  $('cancel').hidden = true;
  await refreshMe();
});
$('buzz').addEventListener('click', buzz);
document.addEventListener('keydown', (event) => {
  if (event.code === 'Space' && !$('room').hidden && document.activeElement?.tagName !== 'INPUT') {
    event.preventDefault();
    buzz();
  }
});
$('hint').addEventListener('click', () => send('client-hint', { no: state.no }));
$('voice').addEventListener('click', () => (voice.on ? leaveVoice() : void joinVoice()));
$('leaderboard-period').addEventListener('change', () => void loadLeaderboard());
$('leaderboard-more').addEventListener('click', () => void loadLeaderboard(true));
$('avatar-file').addEventListener('change', async () => {
  const file = $('avatar-file').files[0];
  if (!file) return;
  const response = await fetch('/strategybuzzer/me/avatar', {
    method: 'PUT',
    headers: { authorization: `Bearer ${state.token}`, 'content-type': file.type },
    body: file,
  });
  const answer = await response.json();
  if (response.ok) showAvatar(answer.avatar);
  else notice(answer.detail ?? response.statusText);
});
$('chat-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const body = $('chat-input').value.trim();
  if (!body || !state.roomId) return;
  send('client-chat', { body });
  $('chat-input').value = '';
});
$('back').addEventListener('click', () => {
  leaveRoom();
  show('lobby');
  void loadLeaderboard();
});

if (state.token) start().catch(() => show('auth'));
else show('auth');
