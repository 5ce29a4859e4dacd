import { useState } from 'preact/hooks';
import { ApiError, api, type Credentials, saveCredentials } from '../api.js';
import { describeError, TextField, useWords } from '../shared.js';

interface Tokens {
  accessToken: string;
  refreshToken: string;
}

/** Email and password (then a TOTP code when the account has 2FA), an operator token, or both. */
export function SignIn({ onSignedIn }: { onSignedIn(credentials: Credentials): void }) {
  const words = useWords();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [operatorToken, setOperatorToken] = useState('');
  const [mfaToken, setMfaToken] = useState<string | undefined>(undefined);
  const [code, setCode] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);

  const finish = async (tokens: Tokens | undefined) => {
    const credentials: Credentials = {
      ...(tokens ? { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken } : {}),
      ...(operatorToken ? { operatorToken } : {}),
    };
    if (operatorToken) {
      // The operator token is checked before it is kept: the jobs list answers 401 to a wrong one.
      saveCredentials({ operatorToken });
      await api('/operator/jobs?limit=1');
    }
    onSignedIn(credentials);
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      if (mfaToken) {
        await finish(await api<Tokens>('/auth/sign-in/mfa', { method: 'POST', body: { mfaToken, code } }));
      } else if (email && password) {
        try {
          await finish(await api<Tokens>('/auth/sign-in', { method: 'POST', body: { email, password } }));
        } catch (failure) {
          if (failure instanceof ApiError && failure.code === 'auth.mfa_required') {
            setMfaToken(String(failure.body.mfaToken));
            return;
          }
          throw failure;
        }
      } else if (operatorToken) {
        await finish(undefined);
      } else {
        setError(words.needCredentials);
      }
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="signin">
      <h2>{words.signIn}</h2>
      <form onSubmit={submit}>
        {mfaToken ? (
          <TextField
            label={words.mfaCode}
            name="code"
            autocomplete="one-time-code"
            inputMode="numeric"
            required
            value={code}
            onValue={setCode}
          />
        ) : (
          <>
            <TextField
              label={words.email}
              name="email"
              type="email"
              autocomplete="username"
              value={email}
              onValue={setEmail}
            />
            <TextField
              label={words.password}
              name="password"
              type="password"
              autocomplete="current-password"
              value={password}
              onValue={setPassword}
            />
            <TextField
              label={words.operatorToken}
              name="operatorToken"
              type="password"
              autocomplete="off"
              value={operatorToken}
              onValue={setOperatorToken}
            />
            <p class="muted">{words.operatorHint}</p>
          </>
        )}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {mfaToken ? words.verify : words.signIn}
        </button>
      </form>
    </main>
  );
}
