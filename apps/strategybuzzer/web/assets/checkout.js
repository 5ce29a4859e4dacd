// Where Stripe Checkout sends the checkout tab back: the game's own tab (which opened this one)
// already shows the coins, pushed on the player's channel; this tab says what happened and closes
// itself when the browser lets it.
if (new URLSearchParams(location.search).has('paid')) {
  document.getElementById('outcome').textContent = 'Payment received: your coins are in your game.';
}
setTimeout(() => window.close(), 1500);
