import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { Messages, type PageProps, TextField, useLoad, useWords } from '../shared.js';

interface Setting {
  env: string;
  fileKey: string;
  module: string | null;
  description: string;
  secret: boolean;
  set: boolean;
  isDefault: boolean;
  value: string | null;
}

/**
 * The configuration in effect (`GET /operator/configuration`, operator token), read-only: the
 * server masks every credential, so a secret shows only whether it is set.
 */
export function Configuration({ context }: PageProps) {
  const words = useWords();
  const [filter, setFilter] = useState('');
  const { data, error } = useLoad(
    async () => (context.operator ? api<{ settings: Setting[] }>('/operator/configuration') : undefined),
    [context.operator],
  );
  if (!context.operator) return <p>{words.operatorTokenNeeded}</p>;
  const wanted = filter.trim().toLowerCase();
  const shown = (data?.settings ?? []).filter((setting) =>
    `${setting.env} ${setting.module ?? ''} ${setting.description}`.toLowerCase().includes(wanted),
  );
  return (
    <>
      <p class="muted">{words.configurationHint}</p>
      <TextField
        label={words.filterSettings}
        type="search"
        name="settingFilter"
        value={filter}
        onValue={setFilter}
      />
      <Messages error={error} />
      <table>
        <thead>
          <tr>
            <th>{words.variable}</th>
            <th>{words.module}</th>
            <th>{words.value}</th>
            <th>{words.description}</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((setting) => (
            <tr key={setting.env} data-setting={setting.env}>
              <td>
                <code>{setting.env}</code>
              </td>
              <td>{setting.module ?? words.kernel}</td>
              <td>
                {setting.secret ? (
                  <span class="muted">{setting.set ? words.secretSet : words.unset}</span>
                ) : setting.value === null ? (
                  <span class="muted">{words.unset}</span>
                ) : (
                  <>
                    <code>{setting.value}</code>
                    {setting.isDefault && <span class="muted"> ({words.byDefault})</span>}
                  </>
                )}
              </td>
              <td>{setting.description}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
