// CryptoCare's web client: plain ES modules against the JSON API, live updates over Socle's
// realtime gateway with the pusher-js build Socle serves. `?key=` names the realtime app's public
// key; `?org=` opens a practice's agenda instead of the patient's pages.
const params = new URLSearchParams(location.search);
const realtimeKey = params.get('key') ?? 'cryptocare-key';
const agendaOrg = params.get('org');
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const $ = (id) => document.getElementById(id);
let token;
let me;
let pusher;
let nextCursor = null;
let lastQuery;
let current;

async function api(method, path, body, headers = {}) {
  const response = await fetch(path, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(data?.detail ?? `${response.status}`);
  return data;
}

function connect() {
  pusher = new window.Pusher(realtimeKey, {
    cluster: 'local',
    wsHost: location.hostname,
    wsPort: Number(location.port),
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: {
      endpoint: '/realtime/auth',
      transport: 'ajax',
      headers: { authorization: `Bearer ${token}`, ...(agendaOrg ? { 'x-org-id': agendaOrg } : {}) },
    },
  });
}

const local = (instant) =>
  new Date(instant).toLocaleString(undefined, {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    hour: '2-digit',
    minute: '2-digit',
  });

$('sign-in-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    token = (await api('POST', '/auth/sign-in', { email: form.get('email'), password: form.get('password') }))
      .accessToken;
    me = await api('GET', '/me');
  } catch (error) {
    $('sign-in-error').textContent = error.message;
    return;
  }
  $('who').textContent = me.email;
  $('sign-in').hidden = true;
  connect();
  if (agendaOrg) return openAgenda();
  $('search').hidden = false;
  pusher.subscribe(`private-user-${me.id}`).bind_global((name, data) => {
    if (name.startsWith('appointment.') && current && data.id === current.id)
      showAppointment({ ...current, ...data });
  });
});

$('search-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const query = new URLSearchParams({ timeZone: zone });
  for (const [name, value] of new FormData(event.target)) if (value !== '') query.set(name, value);
  lastQuery = query;
  $('results').replaceChildren();
  await search(query);
});
$('more').addEventListener('click', () =>
  search(new URLSearchParams({ ...Object.fromEntries(lastQuery), cursor: nextCursor })),
);

async function search(query) {
  const { results, nextCursor: cursor } = await api('GET', `/cryptocare/search?${query}`);
  nextCursor = cursor;
  $('more').hidden = cursor === null;
  for (const result of results) {
    const item = document.createElement('li');
    const title = document.createElement('strong');
    title.textContent = `${result.displayName}, ${result.specialties.join(', ')}`;
    const details = document.createElement('div');
    details.textContent = `${result.practiceName}, ${result.address} · ${result.distanceKm} km · CHF ${(result.priceChfCents / 100).toFixed(2)} · ${result.languages.join('/')}`;
    const slots = document.createElement('div');
    slots.className = 'slots';
    for (const slot of result.nextSlots) {
      const button = document.createElement('button');
      button.textContent = local(slot.startsAt);
      button.dataset.startsAt = slot.startsAt;
      button.addEventListener('click', () => book(result, slot.startsAt));
      slots.append(button);
    }
    if (result.nextSlots.length === 0) slots.textContent = 'No free slot in the next days';
    item.append(title, details, slots);
    $('results').append(item);
  }
  if (results.length === 0 && !query.has('cursor')) $('results').textContent = 'Nobody matches nearby.';
}

async function book(result, startsAt) {
  $('booking-error').textContent = '';
  try {
    const { appointment, invoice } = await api('POST', '/cryptocare/appointments', {
      professionalId: result.id,
      orgId: result.orgId,
      startsAt,
    });
    $('booking').hidden = false;
    showPayment(invoice);
    showAppointment(appointment);
  } catch (error) {
    $('booking-error').textContent = error.message;
    $('booking').hidden = false;
  }
}

function showPayment(invoice) {
  const payment = $('payment');
  payment.replaceChildren();
  if (invoice === null) {
    payment.textContent = 'Waiting for the payment.';
    return;
  }
  if (invoice.qrSvg) {
    // The SVG comes from the payment module, parsed as SVG (no script runs under the page's CSP).
    const svg = new DOMParser().parseFromString(invoice.qrSvg, 'image/svg+xml').documentElement;
    payment.append(document.importNode(svg, true));
  }
  const link = document.createElement('a');
  link.href = invoice.paymentUri;
  link.id = 'pay-link';
  link.textContent = `Pay ${invoice.amountSats} sats`;
  payment.append(link);
}

function showAppointment(appointment) {
  current = appointment;
  $('status').textContent = appointment.status;
  $('when').textContent = local(appointment.startsAt);
  if (appointment.status === 'confirmed') $('payment').textContent = 'Payment received.';
  // An underpaid invoice is never confirmed: the patient sees what came and what is missing.
  const flag = $('payment-flag');
  flag.hidden = appointment.paymentFlag !== 'underpaid';
  if (appointment.paymentFlag === 'underpaid')
    flag.textContent =
      `Underpaid: ${appointment.receivedSats} sats received, ${appointment.missingSats} sats missing. ` +
      (appointment.status === 'held'
        ? 'Send the rest before the hold expires to confirm the appointment.'
        : 'The appointment is not confirmed; the practice will refund or contact you.');
  const zoom = $('zoom');
  zoom.replaceChildren();
  if (appointment.zoomJoinUrl) {
    const link = document.createElement('a');
    link.id = 'zoom-link';
    link.href = appointment.zoomJoinUrl;
    link.textContent = 'Join the consultation';
    zoom.append(link);
  } else if (appointment.status === 'confirmed') zoom.textContent = 'The video link is on its way.';
}

async function openAgenda() {
  $('agenda').hidden = false;
  const from = new Date().toISOString();
  const to = new Date(Date.now() + 60 * 86_400_000).toISOString();
  const rows = new Map();
  const render = () => {
    const sorted = [...rows.values()].sort((a, b) => a.startsAt.localeCompare(b.startsAt));
    $('agenda-list').replaceChildren(
      ...sorted.map((appointment) => {
        const item = document.createElement('li');
        item.dataset.id = appointment.id;
        item.textContent = `${local(appointment.startsAt)}: ${appointment.status}${appointment.zoomJoinUrl ? ' (video ready)' : ''}`;
        return item;
      }),
    );
  };
  pusher.subscribe(`private-org-${agendaOrg}-agenda`).bind_global((name, data) => {
    if (!name.startsWith('appointment.')) return;
    rows.set(data.id, { ...rows.get(data.id), ...data });
    render();
  });
  const { appointments } = await api('GET', `/cryptocare/agenda?from=${from}&to=${to}`, undefined, {
    'x-org-id': agendaOrg,
  });
  for (const appointment of appointments) rows.set(appointment.id, appointment);
  render();
}
