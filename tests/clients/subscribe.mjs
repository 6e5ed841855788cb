// Subscribes to Docket's event stream with graphql-ws, the reference implementation of the
// graphql-transport-ws protocol, and prints each event received as one JSON line.
//
// usage: node subscribe.mjs <ws url> <bearer token> <from position> <count>
// Exits 0 after <count> events, 2 on a protocol or GraphQL error, 3 on a timeout.

import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, from, count] = process.argv.slice(2);
const wanted = Number(count);
const timer = setTimeout(() => {
  console.error("timed out");
  process.exit(3);
}, 30000);

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
  retryAttempts: 0,
  lazy: true,
});

let received = 0;
client.subscribe(
  {
    query: `subscription($from: Int) { events(from: $from) {
      position eventId eventType matterNumber hash signature keyId payload data } }`,
    variables: { from: Number(from) },
  },
  {
    next: (message) => {
      if (message.errors) {
        console.error(JSON.stringify(message.errors));
        process.exit(2);
      }
      console.log(JSON.stringify(message.data.events));
      received += 1;
      if (received === wanted) {
        clearTimeout(timer);
        client.dispose();
        process.exit(0);
      }
    },
    error: (error) => {
      console.error(error instanceof Error ? error.message : JSON.stringify(error));
      process.exit(2);
    },
    complete: () => {},
  },
);
